from django.urls import path

from . import views

urlpatterns = [
    path("", views.cluster_list, name="cluster-list"),
    path("clusters/new/", views.cluster_new, name="cluster-new"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster-detail"),
    path("clusters/<int:pk>/connection/", views.cluster_connection, name="cluster-connection"),
    path("credentials/", views.credential_list, name="credential-list"),
]
