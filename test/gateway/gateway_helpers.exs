defmodule Keyring.GatewayHelpers do
  @moduledoc false
  # An instance with its gateway on a free loopback port, and shortcuts.

  alias Keyring.Test.HTTP

  def start_gateway(tag, gateway_opts \\ [], opts \\ []) do
    name =
      Keyring.Test.Instances.start_instance(tag, [gateway: [port: 0] ++ gateway_opts] ++ opts)

    url = Keyring.Gateway.url(instance: name)
    %{name: name, url: url, port: HTTP.port(url), token: Keyring.Gateway.token(instance: name)}
  end

  def get(gw, path, headers \\ []), do: HTTP.request(gw.port, "GET", path, headers)

  def post(gw, path, body, headers \\ []) do
    json = Keyring.Gateway.JSON.encode!(body)

    HTTP.request(
      gw.port,
      "POST",
      path,
      [{"content-type", "application/json"}, HTTP.bearer(gw.token)] ++ headers,
      json
    )
  end

  def put(gw, path, body) do
    json = Keyring.Gateway.JSON.encode!(body)

    HTTP.request(
      gw.port,
      "PUT",
      path,
      [{"content-type", "application/json"}, HTTP.bearer(gw.token)],
      json
    )
  end

  def delete(gw, path), do: HTTP.request(gw.port, "DELETE", path, [HTTP.bearer(gw.token)])

  @doc "An honest request the node must still answer."
  def serving?(gw), do: get(gw, "/v1/status").status == 200
end
