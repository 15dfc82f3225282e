"""Why a cluster is in its state and since when (the monitor keeps both), and the event kind
for a change of state. Clusters start with no reasons and no start time: the monitor's next
pass fills them in (without an event: it is not a change it saw)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clusters', '0017_event_subscriptions'),
    ]

    operations = [
        migrations.AddField(
            model_name='cluster',
            name='state_reasons',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='cluster',
            name='state_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='clusterevent',
            name='kind',
            field=models.CharField(choices=[('failover', 'Failover'), ('switchover', 'Switchover'), ('node_down', 'Node Down'), ('node_up', 'Node Up'), ('rejoin', 'Rejoin'), ('lag_high', 'Lag High'), ('lag_ok', 'Lag Ok'), ('alarm_raised', 'Alarm Raised'), ('alarm_cleared', 'Alarm Cleared'), ('fenced', 'Fenced'), ('job_failed', 'Job Failed'), ('node_added', 'Node Added'), ('node_replaced', 'Node Replaced'), ('node_removed', 'Node Removed'), ('node_restarted', 'Node Restarted'), ('state_changed', 'State Changed')], max_length=20),
        ),
    ]
