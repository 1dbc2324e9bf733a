from django.contrib import admin

# Users and API tokens keep the admin pages of django.contrib.auth and DRF's authtoken.
admin.site.site_header = "Shop administration"
admin.site.site_title = "Shop admin"
admin.site.index_title = "Orders, stock, payments, shipments, notifications and the event log"
