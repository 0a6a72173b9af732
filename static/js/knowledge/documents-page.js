// A knowledge base's page and a project's page: their document list and its upload form (knowledge/documents.js).

import { enableUploads, followDocuments } from "./documents.js";

enableUploads(document.getElementById("document-upload"));
followDocuments(document.getElementById("documents"));
