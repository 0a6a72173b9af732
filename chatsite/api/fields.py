"""Input fields every API uses: text the database can store, and JSON booleans only."""

from rest_framework import serializers


def reject_unencodable(value: str) -> None:
    """Lone surrogates ("\\ud800") parse as JSON but can't be stored (PostgreSQL rejects them)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("The text contains invalid Unicode (a lone surrogate).") from None


class TextField(serializers.CharField):
    """A CharField that also refuses text the database can't store (NUL is refused by DRF already)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(reject_unencodable)

    def to_internal_value(self, data):
        if not isinstance(data, str):  # DRF would turn 12 into "12"; text fields take JSON strings only
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only (DRF would also take 0, 1, "yes"...): what the schema says is what works."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
