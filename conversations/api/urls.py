"""Filled in by the REST API issue."""

urlpatterns = []
