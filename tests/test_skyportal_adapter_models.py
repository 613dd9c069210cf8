"""The package without SkyPortal, and its default models seam against SkyPortal-shaped
SQLAlchemy models (a stand-in ``skyportal`` package written for the test)."""

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from facility_apis.core.errors import FacilityError
from facility_apis.skyportal import ATLASAPI, FacilityMessageListener, SEDMListener, configure, reset
from facility_apis.skyportal.adapter import NOT_FOLLOWED
from facility_apis.testing import ATLASEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal_models import Handler
from facility_apis.testing.skyportal_models import User as FakeUser

TOKEN = "models-atlas-token-77aa"


def test_importing_the_package_does_not_import_skyportal():
    code = textwrap.dedent(
        """
        import importlib.util, sys
        assert importlib.util.find_spec("skyportal") is None, "skyportal must not be installed here"
        import facility_apis.skyportal as sp
        from facility_apis.skyportal import ATLASAPI, FacilityMessageListener
        ATLASAPI.implements(); ATLASAPI.frontend_render_info(None, None)
        FacilityMessageListener.complete_schema()
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("skyportal", "baselayer"))
        assert not leaked, leaked
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


MODELS = '''
from datetime import datetime
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str]

class Instrument(Base):
    __tablename__ = "instruments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    filters = mapped_column(sa.JSON, default=list)
    api_classname = mapped_column(sa.String, nullable=True)
    listener_classname = mapped_column(sa.String, nullable=True)

class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]

class Allocation(Base):
    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(primary_key=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    instrument = relationship(Instrument)
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("groups.id"))
    group = relationship(Group)
    pi = mapped_column(sa.String, nullable=True)
    proposal_id = mapped_column(sa.String, nullable=True)
    default_share_group_ids = mapped_column(sa.JSON, default=list)
    altdata = mapped_column(sa.JSON, default=dict)

class Obj(Base):
    __tablename__ = "objs"
    id: Mapped[str] = mapped_column(primary_key=True)
    ra: Mapped[float]
    dec: Mapped[float]
    internal_key: Mapped[str]
    comments = relationship("Comment", back_populates="obj")

class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id"))
    obj = relationship(Obj, back_populates="comments")
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    author = relationship(User)
    text: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=datetime.utcnow)

class FollowupRequest(Base):
    __tablename__ = "followuprequests"
    id: Mapped[int] = mapped_column(primary_key=True)
    obj_id: Mapped[str] = mapped_column(sa.ForeignKey("objs.id"))
    obj = relationship(Obj)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"))
    allocation = relationship(Allocation)
    requester_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    requester = relationship(User)
    last_modified_by_id: Mapped[int]
    payload = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(default="pending submission")
    comment = mapped_column(sa.String, nullable=True)
    transactions = relationship(
        "FacilityTransaction",
        back_populates="followup_request",
        order_by="(FacilityTransaction.created_at.desc(), FacilityTransaction.id.desc())",
    )

class FacilityTransaction(Base):
    __tablename__ = "facilitytransactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=datetime.utcnow)
    request = mapped_column(sa.JSON, nullable=True)
    response = mapped_column(sa.JSON, nullable=True)
    followup_request_id = mapped_column(sa.ForeignKey("followuprequests.id"), nullable=True)
    followup_request = relationship(FollowupRequest, back_populates="transactions")
    initiator_id = mapped_column(sa.Integer, nullable=True)
'''

PHOTOMETRY = '''
calls = []

async def add_external_photometry(json, user, session, duplicates="update", refresh=False):
    calls.append((json, user.username, duplicates))
    return list(range(len(json["mjd"]))), "upload-1"
'''


@pytest.fixture
def skyportal_package(tmp_path, monkeypatch):
    """A stand-in ``skyportal`` with SkyPortal's model shapes and its photometry function."""
    pytest.importorskip("sqlalchemy")
    root = tmp_path / "skyportal"
    (root / "handlers" / "api").mkdir(parents=True)
    for package in (root, root / "handlers", root / "handlers" / "api"):
        (package / "__init__.py").write_text("")
    (root / "models.py").write_text(MODELS)
    (root / "handlers" / "api" / "photometry.py").write_text(PHOTOMETRY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m == "skyportal" or m.startswith("skyportal.")]:
        del sys.modules[name]
    reset()


def test_default_models_seam_with_sqlalchemy(skyportal_package):
    import sqlalchemy as sa
    from skyportal import models
    from skyportal.handlers.api import photometry
    from sqlalchemy.orm import Session

    engine = sa.create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    with ATLASEmulator(tokens={TOKEN: "observer"}, rows=6) as atlas, Session(engine) as session:
        configure(facilities={"atlas": {"base_url": atlas.base_url}}, egress=loopback_egress(atlas))
        user = models.User(id=42, username="observer")
        instrument = models.Instrument(id=3, name="ATLAS", filters=["atlasc", "atlaso"])
        group = models.Group(id=2, name="Transients")
        allocation = models.Allocation(id=5, instrument=instrument, group=group, default_share_group_ids=[7], altdata={"api_token": TOKEN})
        obj = models.Obj(id="ZTF26sql", ra=210.5, dec=12.25, internal_key="k-1")
        payload = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
        session.add(models.FollowupRequest(id=11, obj=obj, allocation=allocation, requester=user, last_modified_by_id=42, payload=payload))
        session.commit()
        session.expunge_all()

        def fresh():
            session.expunge_all()
            return session.get(models.FollowupRequest, 11)

        asyncio.run(ATLASAPI.submit(fresh(), session))
        session.commit()  # as SkyPortal's handler does
        request = fresh()
        assert request.status == "submitted: ATLAS task 1" + NOT_FOLLOWED
        assert request.transactions[0].response["remote_id"] == f"{atlas.base_url}/queue/1/"
        assert request.transactions[0].initiator_id == 42

        for _ in range(40):
            asyncio.run(ATLASAPI.get(fresh(), session))
            session.commit()
            if fresh().status.startswith("complete"):
                break
            time.sleep(0.05)
        request = fresh()
        assert request.status.startswith("complete: 6 points")
        ((body, username, duplicates),) = photometry.calls
        assert username == "observer" and duplicates == "update" and body["group_ids"] == [2, 7] and len(body["mjd"]) == 6
        assert all(TOKEN not in str(t.request) + str(t.response) for t in request.transactions)

        handler = Handler({"followup_request_id": 11, "new_status": "observed"}, token="sp-token-abc", user=FakeUser(42, "bot"))
        asyncio.run(FacilityMessageListener.process_message(handler, session))
        session.commit()
        request = fresh()
        assert request.status == "observed"
        assert request.transactions[0].request["headers"]["Authorization"] == "***"


def test_sedm_listener_reads_the_instrument_through_the_default_models_seam(skyportal_package):
    import sqlalchemy as sa
    from skyportal import models
    from sqlalchemy.orm import Session

    engine = sa.create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    with Session(engine) as session:
        user = models.User(id=42, username="observer")
        group = models.Group(id=2, name="Transients")
        sedm = models.Instrument(id=4, name="SEDM", api_classname="SEDMAPI", listener_classname="SEDMListener")
        atlas = models.Instrument(id=3, name="ATLAS", api_classname="ATLASAPI", listener_classname="SEDMListener")
        obj = models.Obj(id="ZTF26sedm", ra=210.5, dec=12.25, internal_key="k-2")
        for request_id, instrument in ((12, sedm), (13, atlas)):
            allocation = models.Allocation(id=request_id, instrument=instrument, group=group)
            session.add(models.FollowupRequest(id=request_id, obj=obj, allocation=allocation, requester=user, last_modified_by_id=42, payload={}))
        session.commit()
        session.expunge_all()

        robot = FakeUser(77, "sedm-robot")
        asyncio.run(SEDMListener.process_message(Handler({"followup_request_id": 12, "new_status": "observed"}, token="robot-t", user=robot), session))
        with pytest.raises(FacilityError, match="FollowupRequest 13 is on instrument ATLAS, which SEDM does not run"):
            asyncio.run(SEDMListener.process_message(Handler({"followup_request_id": 13, "new_status": "observed"}, token="robot-t", user=robot), session))
        session.commit()
        session.expunge_all()
        assert session.get(models.FollowupRequest, 12).status == "observed"
        assert session.get(models.FollowupRequest, 13).status == "pending submission"
