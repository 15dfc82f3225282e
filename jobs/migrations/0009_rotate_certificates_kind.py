from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0008_lint_adopt_kinds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[
                    ("preflight", "Preflight"),
                    ("setup", "Setup"),
                    ("remove_cluster", "Remove Cluster"),
                    ("fence", "Fence"),
                    ("switchover", "Switchover"),
                    ("maintenance_on", "Maintenance On"),
                    ("maintenance_off", "Maintenance Off"),
                    ("rebuild", "Rebuild"),
                    ("restart", "Restart"),
                    ("failover", "Failover"),
                    ("add_node", "Add Node"),
                    ("replace_node", "Replace Node"),
                    ("remove_node", "Remove Node"),
                    ("lint", "Lint"),
                    ("adopt", "Adopt"),
                    ("rotate_certificates", "Rotate Certificates"),
                ],
                max_length=30,
            ),
        ),
    ]
