defmodule Keyring.Gateway.Blobs do
  @moduledoc false
  # Blobs over REST, streamed both ways: an upload is read from the socket in
  # 256 KiB pieces straight into Keyring.Store.put_stream/2 (spooled, hashed,
  # one durable commit); a download streams Keyring.Store.stream/2 with one
  # chunk in flight. Neither side holds the blob whole.

  alias Keyring.Gateway.{Conn, UploadError}
  alias Keyring.Gateway.Ops.Store, as: StoreOps
  alias Keyring.Store

  def upload(conn, _params) do
    case conn.body do
      {:stream, _length} ->
        try do
          Store.put_stream(Conn.body_stream(conn), instance: conn.instance)
        rescue
          e in UploadError -> {:upload_error, e.reason}
        end
        |> case do
          {:ok, cid} ->
            {:ok, size} = Store.size(cid, instance: conn.instance)

            Conn.json(conn, 201, %{"cid" => cid, "size" => size}, [
              {"location", "/v1/blobs/#{cid}"}
            ])

          {:upload_error, :too_large} ->
            Conn.error(
              conn,
              413,
              "body_too_large",
              "the upload is larger than the gateway's max_upload"
            )

          {:upload_error, reason} ->
            Conn.error(conn, 400, "upload_failed", "the upload did not complete: #{reason}")

          {:error, reason} ->
            Conn.error(conn, 500, "store_error", inspect(reason))
        end

      _ ->
        Conn.error(
          conn,
          415,
          "unsupported_media_type",
          "upload blobs as application/octet-stream"
        )
    end
  end

  def download(conn, params) do
    cid =
      try do
        StoreOps.cid!(params)
      catch
        {:bad_request, message} -> {:bad, message}
      end

    with cid when is_binary(cid) <- cid,
         {:ok, size} <- Store.size(cid, instance: conn.instance),
         {:ok, chunks} <- Store.stream(cid, instance: conn.instance) do
      Conn.stream(conn, "application/octet-stream", size, chunks)
    else
      {:bad, message} -> Conn.error(conn, 400, "bad_request", message)
      {:error, :not_found} -> Conn.error(conn, 404, "not_found", "no blob #{params["cid"]}")
      {:error, reason} -> Conn.error(conn, 500, "store_error", inspect(reason))
    end
  end
end
