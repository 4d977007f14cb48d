from django.apps import AppConfig


class PageCacheConfig(AppConfig):
    name = "pagecache"
    verbose_name = "Page cache"

    def ready(self):
        # Registers the system checks (`manage.py check`).
        from pagecache import checks  # noqa: F401
