"""Django admin for the config, the runtime state and the audit log.

Config objects are read-only while a file owns the deployment's config (SPEC §3): the change
page says which file, and a save is refused. Operator actions (pause, resume, enable, disable,
weight overrides, reload, export, hand-over) go through the service layer like every other door.

Every action declares the permission it needs (docs/admin.md lists them and the two ready-made
groups); an action the user may not run is not offered, and a POST that names it anyway is
refused (403) and audited. Form values are checked by the same rules as maglev.yaml
(`health.config.validators`, through the model fields' validators).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html

from . import loginguard, services
from .config import ConfigError, validators
from .config_db import HEALTHCHECK_FIELDS
from .errors import FailedPrecondition, ServiceError
from .models import (
    AuditEntry,
    Backend,
    Deployment,
    Door,
    Frontend,
    Healthcheck,
    Pool,
    PoolMember,
    Transition,
)

STATE_COLORS: dict[str, str] = {
    "up": "#2e7d32",
    "down": "#c62828",
    "unknown": "#757575",
    "paused": "#ef6c00",
    "disabled": "#6a1b9a",
    "removed": "#424242",
}


# Failed logins are audited and throttled (health/loginguard.py).
admin.site.login_form = loginguard.GuardedAdminLoginForm
# Admin's "View site" opens the live dashboard.
admin.site.site_url = "/view/"


def actor(request: HttpRequest) -> services.Actor:
    return services.Actor(request.user.get_username() or "anonymous", Door.ADMIN)


def may(request: HttpRequest, codename: str) -> bool:
    """Whether the user holds health's permission `codename` (superusers hold them all)."""
    return request.user.has_perm(f"health.{codename}")


class GuardedAdmin(admin.ModelAdmin):
    """Offers only the actions the user may run, and refuses a POST naming another one."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.method == "POST":
            asked = {name for name in request.POST.getlist("action") if name}
            refused = sorted(asked - set(self.get_actions(request)))
            if refused:
                loginguard.audit(
                    request,
                    request.user.get_username(),
                    loginguard.DENIED,
                    f"{self.opts.model_name}:{','.join(refused)}",
                    "permission denied",
                )
                raise PermissionDenied
        return super().changelist_view(request, extra_context)


def _rule_field(form: forms.ModelForm, field: str, rule: Any) -> Any:
    """A form field's value run through a shared value rule (which may normalise it)."""
    value = form.cleaned_data.get(field)
    if not value:
        return value
    try:
        return rule(value)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


def _deployment_of(obj: Any) -> Deployment | None:
    for path in ("deployment", "frontend.deployment", "pool.frontend.deployment"):
        cur = obj
        for attr in path.split("."):
            cur = getattr(cur, attr, None)
            if cur is None:
                break
        if isinstance(cur, Deployment):
            return cur
    return obj if isinstance(obj, Deployment) else None


class FileOwnedMixin:
    """Refuses changes to config objects whose deployment's config a file owns."""

    def _owned(self, obj: Any) -> bool:
        dep = _deployment_of(obj) if obj is not None else None
        return bool(dep and dep.config_file)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._owned(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._owned(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and self._owned(obj):
            return False
        args = (request, obj) if isinstance(self, admin.options.InlineModelAdmin) else (request,)
        return super().has_add_permission(*args)  # type: ignore[misc]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        if object_id and request.method == "GET":
            obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
            dep = _deployment_of(obj) if obj is not None else None
            if dep is not None and dep.config_file:
                messages.warning(
                    request,
                    f"The config of deployment {dep.name!r} is owned by {dep.config_file}: "
                    "edit that file and reload. Admin edits of config objects are refused.",
                )
        return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]


class OwnedDeploymentFormMixin(forms.ModelForm):
    """Rejects a new or moved object in a deployment whose config a file owns."""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        dep = data.get("deployment") or _deployment_of(self.instance)
        if isinstance(dep, Deployment) and dep.config_file:
            raise forms.ValidationError(
                f"The config of deployment {dep.name!r} is owned by {dep.config_file}; "
                "edit that file and reload instead."
            )
        return data


def _fields(obj: Any) -> dict[str, Any]:
    """An object's own fields as JSON-ready values, for the audit's before → after."""
    return {
        k: (v if isinstance(v, (int, float, bool, str, type(None))) else str(v))
        for k, v in model_to_dict(obj).items()
    }


class ConfigEditAdmin:
    """Adds, changes and deletes of config objects go through services.ConfigEdit: the would-be
    config is validated with --check's rules inside the transaction (a refusal rolls the whole
    edit back and shows the rule's message on the form), audited with before → after, and
    applied to the running system like a reload once it has committed."""

    def _edit(self, request: HttpRequest, verb: str, target: str) -> services.ConfigEdit:
        edit = services.ConfigEdit(actor(request), f"admin-{verb}", target)
        request._maglev_edit = edit  # type: ignore[attr-defined]
        return edit

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        parent = super().changeform_view  # type: ignore[misc]
        if request.method != "POST":
            return parent(request, object_id, form_url, extra_context)
        model = self.model._meta.model_name  # type: ignore[attr-defined]
        edit = self._edit(request, "change" if object_id else "add", model)
        try:
            with transaction.atomic():
                if object_id:
                    obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
                    if obj is not None:
                        edit.target = f"{model} {obj}"
                        edit.fields_before = _fields(obj)
                        edit.begin(_deployment_of(obj))
                response = parent(request, object_id, form_url, extra_context)
                edit.finish()
        except (ConfigError, ServiceError) as exc:
            # Nothing was saved. Show the form again, with the user's input and the problems.
            request._maglev_refused = exc  # type: ignore[attr-defined]
            return parent(request, object_id, form_url, extra_context)
        except IntegrityError:
            # Another edit saved a clashing row between this form's checks and its save.
            request._maglev_refused = FailedPrecondition(  # type: ignore[attr-defined]
                "another edit changed the same objects at the same time; nothing was saved, "
                "look at the current values and try again"
            )
            return parent(request, object_id, form_url, extra_context)
        return response

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        refused = getattr(request, "_maglev_refused", None)
        if refused is None:
            return form
        problems = (
            [str(i) for i in refused.issues] if isinstance(refused, ConfigError) else [str(refused)]
        )

        class Refused(form):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                super().clean()
                raise forms.ValidationError(
                    ["Not saved: the config would break these rules (maglevd --check):", *problems]
                    if isinstance(refused, ConfigError)
                    else [f"Not saved: {p}" for p in problems]
                )

        return Refused

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        # An object stays in its deployment: moving it would be two edits in one.
        own = {f.name for f in self.model._meta.fields}  # type: ignore[attr-defined]
        if obj is not None and "deployment" in own:
            fields.append("deployment")
        return fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        edit = getattr(request, "_maglev_edit", None)
        if edit is not None:
            is_deployment = isinstance(obj, Deployment)
            edit.begin(
                obj if is_deployment else _deployment_of(obj), new=is_deployment and not change
            )
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        if edit is not None:
            edit.target = f"{self.model._meta.model_name} {obj}"  # type: ignore[attr-defined]
            edit.fields_after = _fields(obj)
            if edit.deployment is None and isinstance(obj, Deployment):
                edit.begin(obj, new=True)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        parent = super().delete_view  # type: ignore[misc]
        if request.method != "POST":
            return parent(request, object_id, extra_context)
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        model = self.model._meta.model_name  # type: ignore[attr-defined]
        edit = self._edit(request, "delete", f"{model} {obj}")
        try:
            with transaction.atomic():
                if obj is not None:
                    edit.fields_before = _fields(obj)
                    edit.begin(obj if isinstance(obj, Deployment) else _deployment_of(obj))
                response = parent(request, object_id, extra_context)
                edit.finish()
        except (ConfigError, ServiceError) as exc:
            messages.error(request, f"{obj} was not deleted: {exc}")
            return HttpResponseRedirect(request.path)
        return response

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)  # type: ignore[misc]
        # A bulk delete would bypass the per-edit check; delete objects one at a time.
        actions.pop("delete_selected", None)
        return actions


def colored_state(state: str) -> str:
    color = STATE_COLORS.get(state, "#000")
    return format_html('<b style="color:{}">{}</b>', color, state)


# -- deployment ---------------------------------------------------------------------------------


class DeploymentForm(forms.ModelForm):
    class Meta:
        model = Deployment
        fields = (
            "name",
            "ipv4_src_address",
            "ipv6_src_address",
            "sync_interval",
            "startup_min_delay",
            "startup_max_delay",
            "probe_netns",
            "transition_history",
        )

    def clean_probe_netns(self) -> str:
        # `/run/netns/NAME` is kept as NAME, the form maglev.yaml export writes.
        return _rule_field(self, "probe_netns", validators.netns) or ""


@admin.register(Deployment)
class DeploymentAdmin(ConfigEditAdmin, FileOwnedMixin, GuardedAdmin):
    form = DeploymentForm
    list_display = ("name", "config_owner", "probe_netns", "config_imported_at")
    actions = ("reload_from_file", "export_yaml", "release_to_admin")
    readonly_fields = ("config_file", "config_imported_at")

    @admin.display(description="config owned by")
    def config_owner(self, obj: Deployment) -> str:
        return obj.config_file or "admin"

    # The actions need their own permissions (view lets a user see the list they are on).
    def has_reload_config_permission(self, request: HttpRequest) -> bool:
        return may(request, "reload_config")

    def has_export_config_permission(self, request: HttpRequest) -> bool:
        return may(request, "export_config")

    def has_take_over_config_permission(self, request: HttpRequest) -> bool:
        return may(request, "take_over_config")

    @admin.action(description="Reload config from its file", permissions=["reload_config"])
    def reload_from_file(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        for dep in queryset:
            try:
                summary = services.reload_config(dep.name, actor(request))
            except ConfigError as exc:
                messages.error(request, f"{dep.name}: config not loaded, nothing changed: {exc}")
            except ServiceError as exc:
                messages.error(request, f"{dep.name}: {exc}")
            else:
                messages.success(request, f"{dep.name}: reloaded: {summary}")

    @admin.action(description="Export config as maglev.yaml", permissions=["export_config"])
    def export_yaml(
        self, request: HttpRequest, queryset: QuerySet[Deployment]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            messages.error(request, "Select exactly one deployment to export.")
            return None
        dep = queryset.get()
        response = HttpResponse(services.export_config(dep.name), content_type="application/yaml")
        response["Content-Disposition"] = f'attachment; filename="maglev-{dep.name}.yaml"'
        return response

    @admin.action(
        description="Hand config ownership to admin (stop following the file)",
        permissions=["take_over_config"],
    )
    def release_to_admin(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        for dep in queryset:
            services.release_config_to_admin(dep.name, actor(request))
            messages.success(request, f"{dep.name}: admin now owns the config")


# -- healthchecks -------------------------------------------------------------------------------


class HealthcheckForm(OwnedDeploymentFormMixin):
    class Meta:
        model = Healthcheck
        fields = ("deployment", "name", *HEALTHCHECK_FIELDS)

    def clean_method(self) -> str:
        # Any case is accepted, as in maglev.yaml; the request goes out upper case.
        return _rule_field(self, "method", validators.http_method)


@admin.register(Healthcheck)
class HealthcheckAdmin(ConfigEditAdmin, FileOwnedMixin, GuardedAdmin):
    form = HealthcheckForm
    list_display = ("name", "deployment", "type", "port", "interval", "timeout", "rise", "fall")
    list_filter = ("deployment", "type")
    search_fields = ("name",)


# -- backends -----------------------------------------------------------------------------------


class BackendForm(OwnedDeploymentFormMixin):
    class Meta:
        model = Backend
        fields = ("deployment", "name", "address", "healthcheck")


class TransitionInline(admin.TabularInline):
    model = Transition
    extra = 0
    can_delete = False
    fields = ("at", "from_state", "to_state", "reason")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Backend)
class BackendAdmin(ConfigEditAdmin, FileOwnedMixin, GuardedAdmin):
    form = BackendForm
    list_display = ("name", "address", "healthcheck", "state_badge", "last_probe", "since_age")
    list_filter = ("deployment", "state__state", "healthcheck")
    search_fields = ("name", "address")
    list_select_related = ("state", "healthcheck")
    actions = ("pause", "resume", "enable", "disable")
    inlines = (TransitionInline,)

    @admin.display(description="state", ordering="state__state")
    def state_badge(self, obj: Backend) -> str:
        return colored_state(obj.state.state)

    @admin.display(description="last probe")
    def last_probe(self, obj: Backend) -> str:
        st = obj.state
        if st.last_probe_at is None:
            return "-"
        latency = f" {st.last_latency * 1000:.1f} ms" if st.last_latency is not None else ""
        return f"{st.last_code}{latency}"

    @admin.display(description="in state for")
    def since_age(self, obj: Backend) -> str:
        if obj.state.since is None:
            return "-"
        return str(timezone.now() - obj.state.since).split(".")[0]

    def has_operate_backend_permission(self, request: HttpRequest) -> bool:
        return may(request, "operate_backend")

    def _intent(self, request: HttpRequest, queryset: QuerySet[Backend], action: str) -> None:
        for b in queryset.select_related("deployment"):
            try:
                state = services.set_backend_intent(
                    b.deployment.name, b.name, action, actor(request)
                )
            except ServiceError as exc:
                messages.error(request, f"{b.name}: {exc}")
            else:
                messages.success(request, f"{b.name}: {action} → {state}")

    @admin.action(description="Pause probing (drain)", permissions=["operate_backend"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Backend]) -> None:
        self._intent(request, queryset, "pause")

    @admin.action(description="Resume probing", permissions=["operate_backend"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Backend]) -> None:
        self._intent(request, queryset, "resume")

    @admin.action(description="Enable", permissions=["operate_backend"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Backend]) -> None:
        self._intent(request, queryset, "enable")

    @admin.action(description="Disable (flush)", permissions=["operate_backend"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Backend]) -> None:
        self._intent(request, queryset, "disable")


# -- frontends and pools ------------------------------------------------------------------------


class FrontendForm(OwnedDeploymentFormMixin):
    class Meta:
        model = Frontend
        fields = (
            "deployment",
            "name",
            "description",
            "address",
            "prefix_length",
            "protocol",
            "port",
            "src_ip_sticky",
            "flush_on_down",
        )


class PoolInline(FileOwnedMixin, admin.TabularInline):
    model = Pool
    extra = 0
    fields = ("position", "name", "members_summary")
    readonly_fields = ("members_summary",)
    show_change_link = True
    ordering = ("position",)

    @admin.display(description="backends (weight)")
    def members_summary(self, obj: Pool) -> str:
        return ", ".join(f"{m.backend.name} ({m.current_weight})" for m in obj.members.all()) or "-"


@admin.register(Frontend)
class FrontendAdmin(ConfigEditAdmin, FileOwnedMixin, GuardedAdmin):
    form = FrontendForm
    list_display = (
        "name",
        "vip",
        "protocol",
        "port",
        "src_ip_sticky",
        "flush_on_down",
        "description",
    )
    list_filter = ("deployment", "protocol")
    search_fields = ("name", "address", "description")
    inlines = (PoolInline,)

    @admin.display(description="VIP")
    def vip(self, obj: Frontend) -> str:
        return f"{obj.address}/{obj.prefix_length}"


class PoolMemberInline(FileOwnedMixin, admin.TabularInline):
    model = PoolMember
    extra = 1
    fields = ("backend", "position", "weight", "weight_override")
    # An override is operator intent: set on the Pool members page (set_weight), audited.
    readonly_fields = ("weight_override",)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "backend":
            kwargs["queryset"] = Backend.objects.select_related("deployment")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Pool)
class PoolAdmin(ConfigEditAdmin, FileOwnedMixin, GuardedAdmin):
    list_display = ("__str__", "frontend", "position")
    list_filter = ("frontend__deployment", "frontend")
    inlines = (PoolMemberInline,)


class WeightOverrideForm(forms.ModelForm):
    weight_override = forms.IntegerField(
        label="weight override",
        help_text="0-100; replaces the configured weight until changed again (kept on import).",
    )

    class Meta:
        model = PoolMember
        fields = ("weight_override",)

    def clean_weight_override(self) -> int:
        try:
            return validators.weight(self.cleaned_data["weight_override"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(PoolMember)
class PoolMemberAdmin(GuardedAdmin):
    """Operators' weight overrides: runtime intent, allowed whoever owns the config."""

    form = WeightOverrideForm
    list_display = ("__str__", "backend", "weight", "weight_override", "current_weight")
    list_filter = ("pool__frontend__deployment", "pool__frontend")
    search_fields = ("backend__name", "pool__name", "pool__frontend__name")
    list_select_related = ("pool__frontend", "backend")
    fields = ("pool", "backend", "weight", "weight_override")
    readonly_fields = ("pool", "backend", "weight")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # members are config: the Pool page edits them

    # Deleting a pool or frontend deletes its members, which Django checks against this admin,
    # so the permission is the model's; members themselves are removed on the Pool page.
    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        raise PermissionDenied

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "show_delete": False}
        return super().change_view(request, object_id, form_url, extra)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may(request, "set_weight")

    @admin.display(description="current weight")
    def current_weight(self, obj: PoolMember) -> int:
        return obj.current_weight

    def save_model(self, request: HttpRequest, obj: PoolMember, form: Any, change: bool) -> None:
        # Through the service layer (audit, runtime hook), not a plain save.
        pool = obj.pool
        try:
            services.set_pool_weight(
                pool.frontend.deployment.name,
                pool.frontend.name,
                pool.name,
                obj.backend.name,
                obj.weight_override,
                actor(request),
            )
        except ServiceError as exc:
            messages.error(request, f"{obj}: weight not changed: {exc}")


# -- history and audit --------------------------------------------------------------------------


class ReadOnlyAdmin(GuardedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transition)
class TransitionAdmin(ReadOnlyAdmin):
    list_display = ("at", "backend", "from_state", "to_state", "reason")
    list_filter = ("to_state", "backend__deployment")
    search_fields = ("backend__name", "reason")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "door", "action", "target", "ok", "error")
    list_filter = ("door", "action", "ok")
    search_fields = ("actor", "target", "error")
