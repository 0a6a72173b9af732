"""The projects API: a user's projects (name, instructions, default model) and their chats (owner only)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from conversations import organizing
from conversations.api import serializers as s
from conversations.api.base import ChatApiView
from conversations.models import Project
from conversations.selectors import project_get


def own_project(request, project_id: int) -> Project:
    """The caller's project with its chat count; another user's id (or none) is a 404."""
    try:
        return project_get(user=request.user, project_id=project_id, projects=Project.objects.with_chat_count())
    except Project.DoesNotExist:
        raise exceptions.NotFound("Project not found.") from None


def _name_taken() -> exceptions.ValidationError:
    return exceptions.ValidationError({"name": ["You already have a project with that name."]})


class ProjectListView(ChatApiView, generics.GenericAPIView):
    serializer_class = s.ProjectSerializer

    @extend_schema(summary="Your projects, by name", operation_id="api_v1_projects_list",
                   responses=s.ProjectSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(Project.objects.for_user(request.user).with_chat_count().order_by("name", "pk"))
        return self.get_paginated_response(s.ProjectSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a project",
        description="Start a chat in it with `project` on POST /api/v1/conversations/; move a chat in or out with "
        "PATCH on the chat.",
        request=s.ProjectSerializer, responses={201: s.ProjectSerializer},
    )
    def post(self, request):
        data = self.validated(request, s.ProjectSerializer)
        try:
            project = organizing.project_create(owner=request.user, **data)
        except organizing.ProjectNameTaken:
            raise _name_taken() from None
        return Response(s.ProjectSerializer(own_project(request, project.pk)).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(ChatApiView):
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="One of your projects", responses=s.ProjectSerializer)
    def get(self, request, project_id):
        return Response(s.ProjectSerializer(own_project(request, project_id)).data)

    @extend_schema(summary="Rename a project, or change its instructions or model", request=s.ProjectSerializer,
                   responses=s.ProjectSerializer)
    def patch(self, request, project_id):
        project = own_project(request, project_id)
        data = self.validated(request, s.ProjectSerializer, partial=True)
        try:
            organizing.project_update(project=project, **data)
        except organizing.ProjectNameTaken:
            raise _name_taken() from None
        return Response(s.ProjectSerializer(own_project(request, project_id)).data)

    @extend_schema(
        summary="Delete a project",
        parameters=[OpenApiParameter(
            "delete_chats", bool,
            description="true: its chats are deleted too (a long one in the background); default false: they stay, "
            "back in your chat list.",
        )],
        responses={204: None},
    )
    def delete(self, request, project_id):
        raw = request.query_params.get("delete_chats", "false")
        if raw not in ("true", "false"):
            raise exceptions.ValidationError({"delete_chats": ["Use true or false."]})
        organizing.project_delete(project=own_project(request, project_id), delete_chats=raw == "true")
        return Response(status=status.HTTP_204_NO_CONTENT)
