# No query of the product reads price history by date alone or by last_updated (the benchmarks'
# section 4 lists the reads there are, each on the (instrument, date) index): both indexes only cost
# every upsert of a refresh a write more. Reversible: the backward step creates them again.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("prices", "0003_instrument_owner"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="pricehistory", name="pricehistory_date_idx"),
        migrations.RemoveIndex(model_name="pricehistory", name="pricehistory_updated_idx"),
    ]
