from django.db import migrations


class Migration(migrations.Migration):
    """Usernames are unique whatever their case, in the database too.

    Sign-up checks this first; the index closes the window where two sign-ups
    whose names differ only in case would both pass the check at once.
    """

    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX shop_user_username_upper_unique ON auth_user (UPPER(username))",
            reverse_sql="DROP INDEX shop_user_username_upper_unique",
        ),
    ]
