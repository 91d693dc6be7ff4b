from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('portfolio', '0004_transaction_instrument_restrict'),
    ]

    operations = [
        migrations.AddField(
            model_name='portfolio',
            name='history_version',
            field=models.BigIntegerField(default=0, editable=False),
        ),
    ]
