defmodule Keyring.Gateway.Router do
  @moduledoc false
  # REST routes under /v1 → operations (or the blob streams). A path that
  # exists under another method answers 405 with Allow; anything else 404.

  alias Keyring.Gateway.{Blobs, Conn, Operations}

  # {method, pattern, target}: pattern items are literals, :param captures
  # one segment into args[param] (:id, :peer only a 52-character id, :cid
  # only 64 hex digits), and {:rest, param} the remaining segments joined
  # with "/". target is an operation name or {module, function}.
  @routes [
    {"GET", ["v1"], {__MODULE__, :index}},
    {"GET", ["v1", "health"], "health"},
    {"GET", ["v1", "status"], "status"},
    {"GET", ["v1", "identity"], "identity"},
    {"GET", ["v1", "presence"], "presence"},
    {"GET", ["v1", "mesh"], "mesh"},
    {"GET", ["v1", "keyrings"], "keyrings"},
    {"POST", ["v1", "keyrings"], "keyring_create"},
    {"POST", ["v1", "keyrings", "join"], "keyring_join"},
    {"GET", ["v1", "keyrings", :id], "keyring"},
    {"GET", ["v1", "keyrings", :id, "members"], "keyring_members"},
    {"GET", ["v1", "keyrings", :id, "links"], "keyring_links"},
    {"POST", ["v1", "keyrings", :id, "invites"], "keyring_invite"},
    {"POST", ["v1", "blobs"], {Blobs, :upload}},
    {"GET", ["v1", "blobs", :cid], {Blobs, :download}},
    {"GET", ["v1", "blobs", :cid, "info"], "blob_info"},
    {"GET", ["v1", "refs"], "refs"},
    {"GET", ["v1", "refs", {:rest, "name"}], "ref_get"},
    {"PUT", ["v1", "refs", {:rest, "name"}], "ref_put"},
    {"DELETE", ["v1", "refs", {:rest, "name"}], "ref_delete"},
    {"POST", ["v1", "rpc", :peer, :handle], "rpc_call"},
    {"POST", ["v1", "tasks", :capability], "task_route"},
    {"GET", ["v1", "transfers"], "transfers"}
  ]

  @spec routes() :: [{String.t(), list(), term()}]
  def routes, do: @routes

  @spec handle(Conn.t()) :: term()
  def handle(%Conn{} = conn) do
    method = if conn.method == "HEAD", do: "GET", else: conn.method

    matches =
      for {m, pattern, target} <- @routes,
          {:ok, params} <- [match(pattern, conn.segments, %{})],
          do: {m, params, target}

    case Enum.find(matches, fn {m, _, _} -> m == method end) do
      {_, _params, _target} when elem(conn.body, 0) == :unsupported ->
        Conn.error(
          conn,
          415,
          "unsupported_media_type",
          "this route takes Content-Type: application/json (blob uploads: application/octet-stream)"
        )

      {_, params, target} ->
        dispatch(conn, target, params)

      nil when matches == [] ->
        Conn.error(conn, 404, "not_found", "no route for #{conn.method} #{conn.path}")

      nil ->
        allow = matches |> Enum.map(&elem(&1, 0)) |> Enum.uniq() |> Enum.join(", ")

        Conn.json(
          conn,
          405,
          %{
            "error" => %{
              "code" => "method_not_allowed",
              "message" => "this route serves #{allow}"
            }
          },
          [{"allow", allow}]
        )
    end
  end

  defp match([], [], acc), do: {:ok, acc}

  defp match([{:rest, name}], [_ | _] = rest, acc),
    do: {:ok, Map.put(acc, name, Enum.join(rest, "/"))}

  defp match([lit | p], [lit | s], acc) when is_binary(lit), do: match(p, s, acc)

  defp match([param | p], [seg | s], acc) when is_atom(param) do
    if segment_ok?(param, seg),
      do: match(p, s, Map.put(acc, Atom.to_string(param), seg)),
      else: :nomatch
  end

  defp match(_, _, _), do: :nomatch

  defp segment_ok?(param, seg) when param in [:id, :peer], do: seg =~ ~r/\A[a-z2-7]{52}\z/
  defp segment_ok?(:cid, seg), do: seg =~ ~r/\A[0-9a-f]{64}\z/
  defp segment_ok?(_param, _seg), do: true

  defp dispatch(conn, {mod, fun}, params), do: apply(mod, fun, [conn, params])

  defp dispatch(conn, op, params) do
    case args(conn, op, params) do
      {:error, message} ->
        Conn.error(conn, 400, "bad_request", message)

      args ->
        case Operations.run(op, args, ctx(conn)) do
          {:ok, status, result} -> Conn.json(conn, status, result)
          {:error, status, code, message} -> Conn.error(conn, status, code, message)
        end
    end
  end

  # Query parameters (typed by the operation's schema), then the JSON body,
  # then path parameters (which win).
  defp args(conn, op, params) do
    case Conn.json_body(conn) do
      {:error, _} = error -> error
      body -> conn.query |> Map.new(&typed(op, &1)) |> Map.merge(body) |> Map.merge(params)
    end
  end

  defp typed(op, {key, text}) do
    input =
      case Operations.fetch(op),
        do:
          (
            {:ok, o} -> o.input
            :error -> %{}
          )

    case {get_in(input, [key, "type"]), text} do
      {"boolean", "true"} ->
        {key, true}

      {"boolean", "false"} ->
        {key, false}

      {"integer", _} ->
        {key,
         case(Integer.parse(text),
           do:
             (
               {i, ""} -> i
               _ -> text
             )
         )}

      _ ->
        {key, text}
    end
  end

  @doc false
  def ctx(%Conn{} = conn) do
    %{
      instance: conn.instance,
      authorized: conn.authorized,
      url: conn.config.url,
      stats: fn -> Keyring.Native.gateway_stats(conn.gateway) end
    }
  end

  @doc false
  def index(conn, _params) do
    routes =
      for {m, pattern, _} <- @routes do
        path =
          Enum.map_join(pattern, "/", fn
            lit when is_binary(lit) -> lit
            {:rest, name} -> "{#{name}}"
            param -> "{#{param}}"
          end)

        "#{m} /#{path}"
      end

    Conn.json(conn, 200, %{
      "routes" => routes ++ ["GET /v1/events", "POST /mcp", "GET /"],
      "openapi" => "priv/openapi.json in the Keyring repository"
    })
  end
end
