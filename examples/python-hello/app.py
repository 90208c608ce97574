"""A fless function: main receives the invocation's JSON args and returns its JSON result.

print() goes to the function's log; fless_fn.http_request reaches hosts on
its allow-list; an exception is the function's error.
"""


def main(args: dict) -> dict:
    name = args.get("name", "world")
    return {"message": f"Hello, {name}!"}
