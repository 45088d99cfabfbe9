from django.contrib import admin
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from concilia.core.memo import forget_all
from concilia.core.models import BusinessCalendar, Holiday, PeriodicRun


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
