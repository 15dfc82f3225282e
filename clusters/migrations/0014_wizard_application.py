"""The wizard's Application step (frontends on the proxy, the unit that follows the primary).

It comes before Review, whose stored number moves from 5 to 6; drafts already at Review are
moved with it, so nobody's wizard jumps back or skips the new step's validation silently
(Review then shows the step, empty, and Back leads to it)."""

from django.db import migrations, models


def review_moves_to_six(apps, schema_editor):
    apps.get_model("clusters", "WizardDraft").objects.filter(reached=5).update(reached=6)


def review_back_to_five(apps, schema_editor):
    drafts = apps.get_model("clusters", "WizardDraft").objects
    drafts.filter(reached=5).update(reached=4)
    drafts.filter(reached=6).update(reached=5)


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0013_adopt_and_application"),
    ]

    operations = [
        migrations.AddField(
            model_name="wizarddraft",
            name="application",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="wizarddraft",
            name="reached",
            field=models.PositiveSmallIntegerField(
                choices=[
                    (1, "Cluster"),
                    (2, "Servers"),
                    (3, "Host keys"),
                    (4, "Preflight"),
                    (5, "Application"),
                    (6, "Review and launch"),
                ],
                default=1,
            ),
        ),
        migrations.RunPython(review_moves_to_six, review_back_to_five),
    ]
