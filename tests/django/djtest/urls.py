from django.urls import include, path

from djtest_app import views

urlpatterns = [
    path("", include("django_socketio.urls")),
    path("page/", views.page),
    path("hello/", views.hello),
    path("session-value/<str:name>", views.session_value),
]
