"""Small, complete programs built on framing; each is run by the tests with a real client."""
