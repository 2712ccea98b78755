"""Two ready-made groups for admin users (docs/admin.md):

- "maglev viewers": may look at everything in admin and change nothing;
- "maglev operators": the same, plus the operator actions: pause/resume/enable/disable
  backends, override pool weights, reload the config from its file, hand it to admin, export it.

Neither may edit the config itself (add/change/delete); give that with Django's model
permissions, or make the user a superuser. Add users to the groups in admin (Users, Groups).
The groups are made once; change them in admin afterwards as you like.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWERS = "maglev viewers"
OPERATORS = "maglev operators"
VIEWED = (
    "deployment",
    "healthcheck",
    "backend",
    "backendstate",
    "frontend",
    "pool",
    "poolmember",
    "transition",
    "auditentry",
)
OPERATOR_ACTIONS = (
    ("backend", "operate_backend"),
    ("poolmember", "set_weight"),
    ("deployment", "reload_config"),
    ("deployment", "take_over_config"),
    ("deployment", "export_config"),
)


def make_groups(apps, schema_editor):
    db = schema_editor.connection.alias
    # Permissions are normally made after the last migration; make health's now.
    app_config = apps.get_app_config("health")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=db)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def perm(model, codename):
        return Permission.objects.using(db).get(
            content_type__app_label="health", content_type__model=model, codename=codename
        )

    view = [perm(model, f"view_{model}") for model in VIEWED]
    operate = [perm(model, codename) for model, codename in OPERATOR_ACTIONS]
    viewers, _ = Group.objects.using(db).get_or_create(name=VIEWERS)
    viewers.permissions.add(*view)
    operators, _ = Group.objects.using(db).get_or_create(name=OPERATORS)
    operators.permissions.add(*view, *operate)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(
        name__in=(VIEWERS, OPERATORS)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("health", "0002_operator_permissions_and_value_rules"),
    ]

    operations = [migrations.RunPython(make_groups, remove_groups)]
