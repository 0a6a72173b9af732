"""A user's own usage and review pages, under /account/."""

from django.urls import path

from teams import views

app_name = "teams"

urlpatterns = [
    path("usage/", views.usage, name="usage"),
    path("reviews/", views.reviews, name="reviews"),
]
