from django.contrib import admin

from .models import ApiSource, DuplicateLink, Tool, TreeNode


@admin.register(ApiSource)
class ApiSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "error_code", "operations_count", "tools_count", "ingested_at"]
    list_filter = ["kind", "status", "error_code"]
    search_fields = ["name", "title", "location"]


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "domain", "category", "canonical"]
    list_filter = ["domain"]
    search_fields = ["name", "description"]
    raw_id_fields = ["source", "canonical", "domain", "category"]


@admin.register(TreeNode)
class TreeNodeAdmin(admin.ModelAdmin):
    list_display = ["name", "level", "parent", "size"]
    list_filter = ["level"]
    search_fields = ["name"]


@admin.register(DuplicateLink)
class DuplicateLinkAdmin(admin.ModelAdmin):
    list_display = ["tool", "canonical", "method", "similarity", "is_duplicate", "judge_verdict"]
    list_filter = ["method", "is_duplicate"]
    raw_id_fields = ["tool", "canonical"]
