from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from concilia.core.jobs import retry_dead_job
from concilia.core.memo import forget_all
from concilia.core.models import BusinessCalendar, DeadJob, Holiday, PeriodicRun


def forget_remembered() -> None:
    """This process sees an administrator's change at once, the others within seconds.

    Forgotten now and again after commit: a request of this process that reads between the two
    would otherwise keep the old rows for the memo's lifetime.
    """
    forget_all()
    transaction.on_commit(forget_all)


class RememberedConfigAdmin(admin.ModelAdmin):
    """Admin of configuration that is read through `concilia.core.memo` (holidays, rules...)."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_remembered()

    def save_related(self, request, form, formsets, change):  # inlines
        super().save_related(request, form, formsets, change)
        forget_remembered()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        forget_remembered()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        forget_remembered()


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1
    fields = ("date", "name")


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(RememberedConfigAdmin):
    list_display = ("name", "time_zone", "workdays", "opens", "closes", "holiday_count")
    search_fields = ("name",)
    fields = ("name", "time_zone", "workdays", "opens", "closes")
    inlines = [HolidayInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(holiday_total=Count("holidays"))

    @admin.display(description=_("own holidays"), ordering="holiday_total")
    def holiday_count(self, obj):
        return obj.holiday_total


@admin.register(Holiday)
class HolidayAdmin(RememberedConfigAdmin):
    list_display = ("date", "name", "applies_to")
    list_filter = ("calendar",)
    search_fields = ("name",)
    date_hierarchy = "date"
    list_select_related = ("calendar",)
    fields = ("date", "name", "calendar")

    @admin.display(description=_("calendar"), ordering="calendar__name")
    def applies_to(self, obj):
        return obj.calendar or _("every calendar")


@admin.register(PeriodicRun)
class PeriodicRunAdmin(admin.ModelAdmin):
    """Read-only: when each periodic job last ran and what it did (or why it failed)."""

    list_display = ["name", "last_started_at", "last_finished_at", "last_failed", "last_result"]
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeadJob)
class DeadJobAdmin(admin.ModelAdmin):
    """Background jobs that failed on every attempt, newest first, with an action that queues
    them again once the cause (a mail server, a shop's API) is fixed."""

    list_display = [
        "task_path",
        "kwargs",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "retried_at",
    ]
    list_filter = [("retried_at", admin.EmptyFieldListFilter), "task_path"]
    search_fields = ["task_path", "error"]
    date_hierarchy = "last_failed_at"
    readonly_fields = [
        "task_path",
        "args",
        "kwargs",
        "queue_name",
        "backend",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "retried_at",
        "error",
    ]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Retry the selected jobs"), permissions=["retry"])
    def retry(self, request, queryset):
        queued = 0
        for dead_job in queryset:
            if retry_dead_job(dead_job=dead_job):
                self.log_change(request, dead_job, [{"changed": {"fields": ["retried_at"]}}])
                queued += 1
        self.message_user(
            request,
            ngettext("%(count)d job queued again.", "%(count)d jobs queued again.", queued)
            % {"count": queued},
            messages.SUCCESS if queued else messages.WARNING,
        )

    def has_retry_permission(self, request):
        # Whoever may delete dead jobs may also send them again.
        return self.has_delete_permission(request)
