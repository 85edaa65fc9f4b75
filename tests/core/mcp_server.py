"""A tiny stdio MCP server for tests."""

from fastmcp import FastMCP

server = FastMCP("calc", instructions="Use add to add numbers.")


@server.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool
def broken() -> int:
    """Always fails."""
    raise ValueError("this tool is broken")


if __name__ == "__main__":
    server.run()
