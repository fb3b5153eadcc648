"""The smallest Lambent Python function: `lambent` deploys it with handler `app.handler`."""


def handler(event, context):
    return {
        "message": f"Hello, {event.get('name', 'world')}!",
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
    }
