from django.urls import path

from . import views

app_name = "chat"
urlpatterns = [
    path("", views.rooms, name="rooms"),
    path("create/", views.create, name="create"),
    path("system_message/", views.system_message, name="system_message"),
    path("<str:slug>/", views.room, name="room"),
]
