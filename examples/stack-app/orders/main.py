"""Gets every publish to the topic stack-app-orders (its `subscriptions`)."""


def handler(event, context):
    print("order received:", event)
    return {"accepted": event}
