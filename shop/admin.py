"""The admin site's titles, and the read-only bases every app's history uses."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

# History and replicas are viewable, never added, changed or deleted by hand: the event
# log's own read-only base serves every app's.
from outbox.admin import ReadOnlyAdmin

# Users and API tokens keep the admin pages of django.contrib.auth and DRF's authtoken.
admin.site.site_header = "Shop administration"
admin.site.site_title = "Shop admin"
admin.site.index_title = "Orders, stock, payments, shipments, notifications and the event log"


class ReadOnlyInline(admin.TabularInline):
    """The lines of a read-only parent, shown in place."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


__all__ = ["ReadOnlyAdmin", "ReadOnlyInline"]
