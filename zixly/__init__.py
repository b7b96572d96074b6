"""The ``zixly`` command: the local stack, the services, and the tools around them."""
