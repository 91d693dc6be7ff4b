"""A model admin whose rows other data is made from (a portfolio's figures, their caches): saving or deleting
one there is announced as the apps' own writes announce theirs."""

from django.contrib import admin


class AnnouncingAdmin(admin.ModelAdmin):
    """Each save or delete calls `announce` with the `announced_fields` of the rows it touched, in the admin's own
    transaction: of a row saved, its values after the save and, when it was changed, before it (a row moved to
    another portfolio or instrument changes both); of rows deleted, one at a time or by the list's action, theirs."""

    announced_fields: tuple[str, ...] = ()

    def announce(self, rows: list[tuple]) -> None:
        raise NotImplementedError

    def prepare(self, rows: list[tuple]) -> None:
        """Called with the same rows as `announce`, before the write, in its transaction: for the locks a write of
        them takes first (nothing by default)."""

    def _values(self, obj) -> tuple:
        return tuple(getattr(obj, name) for name in self.announced_fields)

    def save_model(self, request, obj, form, change):
        before = list(type(obj).objects.filter(pk=obj.pk).values_list(*self.announced_fields)) if change else []
        self.prepare([self._values(obj), *before])
        super().save_model(request, obj, form, change)
        self.announce([self._values(obj), *before])

    def delete_model(self, request, obj):
        row = self._values(obj)
        self.prepare([row])
        super().delete_model(request, obj)
        self.announce([row])

    def delete_queryset(self, request, queryset):
        rows = list(queryset.values_list(*self.announced_fields).distinct())
        self.prepare(rows)
        super().delete_queryset(request, queryset)
        self.announce(rows)
