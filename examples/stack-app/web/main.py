"""GET /stack-app/hello?name=you: the stack's HTTP route."""
import os


def handler(event, context):
    name = (event.get("query") or {}).get("name", "world")
    return {"message": "%s, %s" % (os.environ.get("GREETING", "hello"), name)}
