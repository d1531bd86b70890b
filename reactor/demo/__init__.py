"""The demo web application that ``python -m reactor demo`` runs."""
