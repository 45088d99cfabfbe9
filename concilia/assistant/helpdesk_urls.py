"""The agents' live chats, under /helpdesk/chats/ (the helpdesk's own URLs are in cases.urls)."""

from django.urls import path

from concilia.assistant import helpdesk

app_name = "livechat"

urlpatterns = [
    path("", helpdesk.chat_list, name="list"),
    path("case/<str:reference>/", helpdesk.case_chat, name="case"),
    path("<uuid:public_id>/", helpdesk.chat_page, name="chat"),
    path("<uuid:public_id>/messages", helpdesk.chat_messages, name="messages"),
    path("<uuid:public_id>/take", helpdesk.take_chat, name="take"),
    path("<uuid:public_id>/reply", helpdesk.reply_chat, name="reply"),
    path("<uuid:public_id>/end", helpdesk.end_chat, name="end"),
]
