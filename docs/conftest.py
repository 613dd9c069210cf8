# docs/examples/ holds the code shown in the pages. tests/test_docs.py runs it with its schemas
# installed; collected on its own it could not import facility_apis.facilities.example.
collect_ignore = ["examples"]
