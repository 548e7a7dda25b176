defmodule Keyring.Gateway.Conn do
  @moduledoc false
  # One dynamic request as the handler process sees it, and the ways to
  # answer it: JSON, an error, or a body streamed in 256 KiB chunks with one
  # chunk in flight (the NIF answers each when the socket took it). The
  # request body of an upload is read the same way, piece by piece.

  alias Keyring.Gateway.UploadError
  alias Keyring.Native

  defstruct [
    :gateway,
    :instance,
    :id,
    :method,
    :path,
    :segments,
    :query,
    :headers,
    :body,
    :authorized,
    :mcp,
    :config
  ]

  @type t :: %__MODULE__{}

  @chunk_timeout 60_000

  @spec new(map(), map()) :: t()
  def new(req, ctx) do
    %__MODULE__{
      gateway: ctx.gateway,
      instance: ctx.instance,
      config: ctx.config,
      id: req.id,
      method: req.method,
      path: req.path,
      segments: segments(req.path),
      query: Map.new(req.query),
      headers: Map.new(req.headers),
      body: req.body,
      authorized: req.authorized,
      mcp: req.mcp
    }
  end

  # Path segments, percent-decoded; "" segments (a trailing slash) dropped.
  defp segments(path) do
    path
    |> String.split("/", trim: true)
    |> Enum.map(fn s ->
      try do
        URI.decode(s)
      rescue
        ArgumentError -> s
      end
    end)
  end

  @doc "The JSON body as a map (`%{}` when there is none)."
  @spec json_body(t()) :: map() | {:error, String.t()}
  def json_body(%__MODULE__{body: {:json, map}}) when is_map(map), do: map
  def json_body(%__MODULE__{body: nil}), do: %{}
  def json_body(%__MODULE__{body: {:json, _}}), do: {:error, "the JSON body must be an object"}

  def json_body(%__MODULE__{body: {:stream, _}}),
    do: {:error, "this route takes application/json"}

  @spec json(t(), pos_integer(), term(), [{String.t(), String.t()}]) :: :ok | {:error, term()}
  def json(conn, status, term, headers \\ []) do
    case Native.gateway_respond(conn.gateway, conn.id, status, headers, {:json, term}) do
      {:error, :dirty} ->
        conn.gateway
        |> Native.gateway_respond_dirty(conn.id, status, headers, {:json, term})
        |> ok()

      other ->
        ok(other)
    end
  end

  defp ok({:ok, :ok}), do: :ok
  defp ok(other), do: other

  @spec error(t(), pos_integer(), String.t(), String.t()) :: :ok | {:error, term()}
  def error(conn, status, code, message) do
    json(conn, status, %{"error" => %{"code" => code, "message" => message}})
  end

  @doc "Answers with `enumerable` streamed as `content_type`; returns when all was sent."
  @spec stream(t(), String.t(), non_neg_integer() | nil, Enumerable.t()) ::
          :ok | {:error, term()}
  def stream(conn, content_type, length, enumerable) do
    with {:ok, :ok} <-
           Native.gateway_respond(conn.gateway, conn.id, 200, [], {:stream, content_type, length}) do
      result =
        Enum.reduce_while(enumerable, :ok, fn chunk, :ok ->
          ref = make_ref()
          :ok = Native.gateway_chunk(conn.gateway, conn.id, ref, IO.iodata_to_binary(chunk))

          receive do
            {:keyring_reply, ^ref, :ok} -> {:cont, :ok}
            {:keyring_reply, ^ref, {:error, reason}} -> {:halt, {:error, reason}}
          after
            @chunk_timeout -> {:halt, {:error, :timeout}}
          end
        end)

      Native.gateway_finish(conn.gateway, conn.id)
      result
    end
  end

  @doc "The streamed request body, read lazily; raises `UploadError` if the client fails."
  @spec body_stream(t()) :: Enumerable.t()
  def body_stream(conn) do
    Stream.resource(
      fn -> :reading end,
      fn
        :done ->
          {:halt, :done}

        :reading ->
          ref = make_ref()
          :ok = Native.gateway_read(conn.gateway, conn.id, ref)

          receive do
            {:keyring_reply, ^ref, {:ok, piece}} -> {[piece], :reading}
            {:keyring_reply, ^ref, :eof} -> {:halt, :done}
            {:keyring_reply, ^ref, {:error, reason}} -> raise UploadError, reason: reason
          after
            @chunk_timeout -> raise UploadError, reason: :timeout
          end
      end,
      fn _ -> :ok end
    )
  end
end
