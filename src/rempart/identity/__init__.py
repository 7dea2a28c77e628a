"""Users, roles, passwords, second factors, API clients and sessions."""
