from django.urls import include, path

from concilia.intake import views

app_name = "intake"

urlpatterns = [
    path("", views.home, name="home"),
    path("complaints/new", views.complaint_new, name="complaint-new"),
    path("reclamaciones/nueva", views.complaint_new, {"language": "es"}, name="complaint-new-es"),
    path(
        "complaints/submitted/<str:reference>",
        views.complaint_submitted,
        name="complaint-submitted",
    ),
    path("track", views.track, name="track"),
    path("seguimiento", views.track, {"language": "es"}, name="track-es"),
    path("track/sign-in/<str:token>", views.sign_in, name="sign-in"),
    path("track/sign-out", views.sign_out, name="sign-out"),
    path("track/cases", views.my_cases, name="my-cases"),
    # The customer's requests about their data (the privacy app's pages, named by string).
    path("track/my-data/", include("concilia.privacy.tracking_urls")),
    path("track/cases/<str:reference>", views.case_detail, name="case-detail"),
    path("track/cases/<str:reference>/offer", views.answer_offer, name="answer-offer"),
    path("track/cases/<str:reference>/proposal", views.answer_proposal, name="answer-proposal"),
    path(
        "cases/<str:reference>/attachments/<int:attachment_id>",
        views.attachment_download,
        name="attachment",
    ),
]
