# hello — the cold-python benchmark's handler: the least a Python function does.
def lambda_handler(event, context):
    return {"hello": "world"}
