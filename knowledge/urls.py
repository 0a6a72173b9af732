from django.urls import path

from knowledge import views

app_name = "knowledge"
urlpatterns = [
    path("", views.base_list, name="list"),
    path("<int:base_id>/", views.KnowledgeBaseDetailView.as_view(), name="base"),
    path("<int:base_id>/documents/", views.DocumentUploadView.as_view(), name="upload"),
    path("<int:base_id>/delete/", views.KnowledgeBaseDeleteView.as_view(), name="base_delete"),
    path("documents/<int:document_id>/delete/", views.DocumentDeleteView.as_view(), name="document_delete"),
    path("passages/<int:passage_id>/", views.passage_detail, name="passage"),
]
