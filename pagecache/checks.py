"""System checks for the misconfigurations that silently stop caching (`manage.py check`)."""
