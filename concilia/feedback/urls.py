"""The feedback pages, under /helpdesk/feedback/."""

from django.urls import path

from concilia.feedback import views

app_name = "feedback"

urlpatterns = [
    path("", views.review_queue, name="queue"),
    path("reviewed/", views.reviewed_list, name="reviewed"),
    path("conversations/<uuid:public_id>/", views.review_page, name="review"),
    path("labels/<int:pk>/exclude", views.exclude_label, name="exclude-label"),
    path("unanswered/", views.unanswered_list, name="unanswered"),
    path("unanswered/<int:pk>/dismiss", views.dismiss_question, name="dismiss-question"),
    path("knowledge/", views.knowledge_report, name="knowledge"),
    path("templates/", views.template_report, name="templates"),
]
