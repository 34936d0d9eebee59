from django.contrib import admin

from .models import AuditDecision, Message, Persona, Reflection, Trajectory, VerifierVote


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ["name", "role", "domain", "origin"]
    list_filter = ["origin"]
    search_fields = ["name", "role", "background"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0


class ReflectionInline(admin.TabularInline):
    model = Reflection
    extra = 0


class VoteInline(admin.TabularInline):
    model = VerifierVote
    extra = 0


@admin.register(Trajectory)
class TrajectoryAdmin(admin.ModelAdmin):
    list_display = ["id", "iteration", "seq", "mode", "status", "verdict", "score", "difficulty", "audit_decision"]
    list_filter = ["mode", "status", "verdict", "difficulty", "audit_decision"]
    raw_id_fields = ["iteration", "persona", "domain", "category"]
    inlines = [MessageInline, ReflectionInline, VoteInline]


@admin.register(AuditDecision)
class AuditDecisionAdmin(admin.ModelAdmin):
    list_display = ["trajectory", "reviewer", "decision", "created_at"]
    list_filter = ["decision"]
    raw_id_fields = ["trajectory"]
