from django.urls import path

from knowledge.api import views

urlpatterns = [
    path("knowledge-bases/", views.KnowledgeBaseListView.as_view(), name="api_knowledge_base_list"),
    path("knowledge-bases/<int:base_id>/", views.KnowledgeBaseDetailView.as_view(), name="api_knowledge_base_detail"),
    path("knowledge-bases/<int:base_id>/documents/", views.DocumentListView.as_view(),
         name="api_knowledge_document_list"),
    path("knowledge-bases/<int:base_id>/search/", views.KnowledgeSearchView.as_view(), name="api_knowledge_search"),
    path("knowledge-documents/<int:document_id>/", views.DocumentDetailView.as_view(),
         name="api_knowledge_document_detail"),
    path("knowledge-documents/<int:document_id>/passages/", views.PassageListView.as_view(),
         name="api_knowledge_passage_list"),
    path("knowledge-passages/<int:passage_id>/", views.PassageDetailView.as_view(),
         name="api_knowledge_passage_detail"),
    path("projects/<int:project_id>/knowledge-bases/", views.ProjectKnowledgeView.as_view(),
         name="api_project_knowledge"),
    path("projects/<int:project_id>/documents/", views.ProjectDocumentListView.as_view(),
         name="api_project_document_list"),
    path("conversations/<uuid:conversation_id>/knowledge-bases/", views.ConversationKnowledgeView.as_view(),
         name="api_conversation_knowledge"),
]
