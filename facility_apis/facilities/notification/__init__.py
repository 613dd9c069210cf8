"""Facilities whose partner is reached by a message: GENERIC (another service's API, Slack or
e-mail) and SLACK (a Slack incoming webhook). Both announce through ``facility_apis.notify``."""

from .generic import GenericFacility
from .slack import SlackFacility

__all__ = ["GenericFacility", "SlackFacility"]
