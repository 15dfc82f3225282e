"""The credentials page: the SSH logins HA Center uses (never their secrets), and adding one."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, VIEWER, role_required
from clusters.inventory import services
from clusters.inventory.forms import CredentialForm
from clusters.models import Credential


@sensitive_post_parameters("private_key", "passphrase", "password")  # out of error reports
@role_required(VIEWER, post=ADMIN)
@require_http_methods(["GET", "POST"])
def credential_list(request: HttpRequest) -> HttpResponse:
    """The credentials (never their secrets) and a form to add one."""
    form, status = CredentialForm(), 200
    if request.method == "POST":
        data = request.POST.copy()
        upload = request.FILES.get("private_key_file")
        try:
            if upload is not None and not data.get("private_key"):
                data["private_key"] = services.key_from_upload(upload)
            cred = services.credential_create(data=data)
        except services.InvalidInput as exc:
            form = CredentialForm(data=data)
            form.is_valid()
            for message in exc.field_errors.get("private_key", []):  # an unreadable upload
                if message not in form.errors.get("private_key", []):
                    form.add_error("private_key", message)
            audit(request, action="credential.create", result=refused(exc.field_errors))
            status = 400
        else:
            audit(
                request,
                action="credential.create",
                target=f"credential {cred.name}",
                params={"name": cred.name, "username": cred.username, "kind": cred.kind},
            )
            messages.success(request, f"Credential {cred.name} saved (encrypted).")
            return redirect("credential-list")
    return render(
        request,
        "clusters/credential_list.html",
        {"credentials": Credential.objects.all(), "form": form},
        status=status,
    )
