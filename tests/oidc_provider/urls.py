from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.oidc_provider import backchannel

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("test/sign-out/", backchannel.sign_out),  # back-channel logout to the relying party, on a test's request
]
