"""Django admin for jobs: for looking, not for editing what workers wrote."""

from django.contrib import admin

from jobs.models import Job, Step


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    can_delete = False
    readonly_fields = [
        "position",
        "title",
        "node",
        "status",
        "summary",
        "progress",
        "started",
        "finished",
    ]
    exclude = ["name"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "cluster", "status", "attempt", "created", "finished"]
    list_filter = ["status", "kind"]
    readonly_fields = [
        "kind",
        "cluster",
        "node",
        "params",
        "mutating",
        "status",
        "error",
        "requested_by",
        "cancel_requested",
        "attempt",
        "worker",
        "heartbeat",
        "started",
        "finished",
    ]
    inlines = [StepInline]
