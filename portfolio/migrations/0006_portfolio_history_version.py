from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('portfolio', '0005_watchlistitem'),
    ]

    operations = [
        migrations.AddField(
            model_name='portfolio',
            name='history_version',
            field=models.BigIntegerField(default=0, editable=False),
        ),
    ]
