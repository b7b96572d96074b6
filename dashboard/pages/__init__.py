"""The dashboard's pages: each a ``layout`` for the router and a ``register`` for its callbacks."""
