"""Django admin for the inventory; secrets are write-only there too."""

from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from clusters.models import ApiToken, AuditEntry, Cluster, Credential, Node, ScannedHostKey


class CredentialAdminForm(forms.ModelForm):
    """Secret fields are never rendered back; leaving one empty keeps the stored value."""

    private_key = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    passphrase = forms.CharField(required=False, widget=forms.PasswordInput)
    password = forms.CharField(required=False, widget=forms.PasswordInput)

    class Meta:
        model = Credential
        fields = ["name", "username", "private_key", "passphrase", "password"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("private_key", "passphrase", "password"):
            self.initial[name] = ""

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk:
            for name in ("private_key", "passphrase", "password"):
                if not data.get(name):
                    data[name] = getattr(self.instance, name)
        return data


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialAdminForm
    list_display = ["name", "username", "kind", "created"]

    @method_decorator(sensitive_post_parameters("private_key", "passphrase", "password"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Out of Django's error reports, as on the credential pages.
        return super().changeform_view(request, object_id, form_url, extra_context)


class NodeInline(admin.TabularInline):
    model = Node
    extra = 0
    readonly_fields = ["host_key_type", "host_key_fingerprint"]
    exclude = ["host_key_base64"]


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "replication", "failover_profile", "created"]
    inlines = [NodeInline]


@admin.register(ScannedHostKey)
class ScannedHostKeyAdmin(admin.ModelAdmin):
    list_display = ["address", "port", "key_type", "fingerprint", "scanned"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "created", "last_used"]
    readonly_fields = ["digest", "prefix", "created", "last_used"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit trail cannot be edited from the console."""

    list_display = ["at", "username", "action", "target", "result", "source_address"]
    list_filter = ["action"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
