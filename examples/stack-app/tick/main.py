"""Runs every minute (its `schedules`); the line shows in its logs."""
import time


def handler(event, context):
    print("tick at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return {"ticked": True}
