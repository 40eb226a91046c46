"""Server-rendered portal pages. Views validate and render; every write goes through a ``tenancy`` service."""
