"""The admin site's titles, and the read-only bases every app's history uses."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

# Users and API tokens keep the admin pages of django.contrib.auth and DRF's authtoken.
admin.site.site_header = "Shop administration"
admin.site.site_title = "Shop admin"
admin.site.index_title = "Orders, stock, payments, shipments, notifications and the event log"


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and replicas: viewable, never added, changed or deleted by hand.

    Whatever staff may do to such rows is an admin action that calls a service.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """The lines of a read-only parent, shown in place."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
